"""Password hashing, JWT access tokens, opaque refresh tokens, casbin RBAC."""
