//! File manager (being written by the managers issue).
