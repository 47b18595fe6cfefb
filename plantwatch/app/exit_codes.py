"""The exit codes of every command."""

EXIT_OK = 0
EXIT_INVALID = 1  # a config, an argument or a secret is wrong: nothing ran
EXIT_BAD_VALUES = 3  # `probe`: the device answered, but some value is bad
EXIT_BROKEN_PIPE = 128 + 13  # the reader of our output went away, as a process killed by SIGPIPE
