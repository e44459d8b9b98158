"""linewatch collector: validates what agents send, keeps the record, shows status."""
