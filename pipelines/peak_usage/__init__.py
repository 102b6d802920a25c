"""Peak usage and capacity planning as a prediction kind (issue 11): hourly forecasts on each workspace's local
clock, daily peaks with the top 3 peak hours, capacity needs and alerts. See ``forecast.py`` and ``kind.py``."""
