"""Who may do what: signed identities (JWT) and their keys, the role matrix, masking of personal data by role, one
notion of the same person, and refusing weak secrets at start."""
