#!/bin/sh
# Executable in the context: stored as 0755 whatever the checkout's umask.
exec cat /opt/app/VERSION
