"""limone_obs.alerts."""
