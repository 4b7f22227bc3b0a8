"""Corpus analytics: one vector per video (corpus), clusters, outliers, duplicates, trends, plots."""
