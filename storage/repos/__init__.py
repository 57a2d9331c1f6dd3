"""Repository functions over ``AsyncSession``, one module per aggregate. No business rules here.

Commit rule: a repository function never commits, and the caller's unit of work commits, unless
its name ends in ``_and_commit``. Those commit the whole session (so they are called on a session
that holds nothing else of the caller's), because their effect must be visible to other replicas
at once (a claim), or because a conflicting insert is told apart only by a rollback.
Seed data is apart (``storage.seed``), a unit of work of its own.
"""
