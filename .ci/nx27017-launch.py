"""Starts an nx-27017 server for the store tests (see .ci/python-clients-up.sh).

nx-27017 numbers change-stream cursors from 1000 and data cursors from 10**12; a
MongoDB driver may treat small ids as ordinary cursors of another kind. Real servers
hand out large ids, so the change-stream counter is moved to start at 2**40 before the
server starts. Arguments are nx-27017's own (--db PATH --host 127.0.0.1 -p PORT).
"""

import itertools
import sys

import nx_27017.changestream as changestream

changestream._cursor_id_counter = itertools.count(2**40)

from nx_27017.nx_27017 import main  # noqa: E402  (after the counter is moved)

if __name__ == "__main__":
    sys.argv[0] = "nx-27017"
    main()
