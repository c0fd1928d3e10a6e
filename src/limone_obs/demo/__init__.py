"""limone_obs.demo."""
