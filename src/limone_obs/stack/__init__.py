"""limone_obs.stack."""
