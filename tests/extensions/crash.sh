#!/bin/sh
# Dies of a signal after a message on stderr.
echo "crash plugin: about to die" >&2
kill -SEGV $$
