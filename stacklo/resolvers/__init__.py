"""Thin resolvers: GraphQL input -> domain call -> payload; DomainError -> userErrors."""
