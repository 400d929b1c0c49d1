#!/bin/sh
# The image's entry point: FORUMCAST_SECRET_FILE names a file holding the token secret (the
# compose file's generated one, or a Docker secret); it becomes FORUMCAST_SECRET, which
# forumcast reads. The variable is removed before exec: forumcast refuses unknown settings.
set -eu
if [ -n "${FORUMCAST_SECRET_FILE:-}" ]; then
    if [ -z "${FORUMCAST_SECRET:-}" ]; then
        FORUMCAST_SECRET=$(cat "$FORUMCAST_SECRET_FILE")
        export FORUMCAST_SECRET
    fi
    unset FORUMCAST_SECRET_FILE
fi
exec "$@"
