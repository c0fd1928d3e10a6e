"""limone_obs.dashboards."""
