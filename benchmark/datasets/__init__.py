"""Dataset adapters: each turns a dataset as users have it into the canonical manifest."""
