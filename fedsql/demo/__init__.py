"""The demo: synthetic clinic data (generator) and the embedded demo federation."""
