"""Time-series export: the record's feed as points for any InfluxDB write-API server
(VictoriaMetrics, InfluxDB 2.x/3.x). points.py owns the metric names, tags and fields."""
