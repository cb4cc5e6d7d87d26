"""The explorer and evidence reports: what journalists read and courts can verify."""
