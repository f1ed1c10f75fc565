"""The Vyper contracts (Registry, Rounds, Token), their committed artifacts and ABI helpers."""
