"""Ingest: manifest -> producer -> scheduler -> task creation -> polling -> segment stream -> writer."""
