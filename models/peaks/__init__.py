"""Peak usage: hourly forecasts on each series' own (local) clock, sample paths, daily peaks and capacity.

Pure (dataframes and arrays in and out, no database, MLflow or settings):

* :mod:`models.peaks.timezones`: a workspace's time zone from its daily rhythm;
* :mod:`models.peaks.clock`: UTC hours to the local wall clock and back, daylight saving included;
* :mod:`models.peaks.members`: the hourly members (weekly naive, weekly profile, MSTL, global GBM, and the
  daily profile for short series);
* :mod:`models.peaks.forecaster`: :class:`PeakForecaster`, backtested choice per group and sample paths;
* :mod:`models.peaks.daily`: daily peaks, the top 3 peak hours with probabilities, and capacity.
"""
from .daily import PEAK_COLUMNS, daily_peaks, peak_table
from .forecaster import LEVELS, PeakForecaster
from .timezones import DEFAULT_ZONE, ZoneChoice, infer_time_zones, utc_offset_hours

__all__ = ["DEFAULT_ZONE", "LEVELS", "PEAK_COLUMNS", "peak_table", "PeakForecaster", "ZoneChoice", "daily_peaks", "infer_time_zones",
           "utc_offset_hours"]
