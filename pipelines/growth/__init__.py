"""Growth projections (DAU, WAU, MAU scenarios, milestones, goals): the prediction kind ``growth``."""
