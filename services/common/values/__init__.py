"""Plain values and rules every service shares, without I/O: money, typed errors (and their HTTP problem form),
marshmallow fields, logframes, inert text, JSON wire values, the Annex III headings, report due dates, retry waits."""
