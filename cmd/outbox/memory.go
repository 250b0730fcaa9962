package main

import "log/slog"

// setMemoryLimits is filled in below.
func setMemoryLimits(log *slog.Logger) {}
