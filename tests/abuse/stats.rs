//! Abuse: the stats and admin listener under hostile clients.
