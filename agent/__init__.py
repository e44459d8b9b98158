"""linewatch agent: measures a commune office's lines and publishes over MQTT."""
