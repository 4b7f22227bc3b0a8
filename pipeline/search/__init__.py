"""Search: queries, score fusion, the moment rule, result types, the searcher and its result cache."""
