"""A small dependency; the test builds it at two versions that two packages bundle."""

VERSION = "1.0"
