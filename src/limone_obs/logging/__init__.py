"""limone_obs.logging."""
