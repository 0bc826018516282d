"""Intake and output adapters. Each module registers its types in :mod:`.base`'s registries."""
