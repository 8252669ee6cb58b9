"""The kinds of value an inventory may hold, each one a check that says what it accepts and what it refuses.

Inventory values end up in files and commands on the hosts, written as root. So every setting declares a value
type (``setting()`` refuses a field without one) and the host keys use the same types: a value is accepted only when
it cannot break out of the file or command it goes into. A value type is a small frozen object:

- called with a value, it returns None when the value is acceptable, else one line saying what is wrong;
- ``annotation`` is the Python type it accepts, as a settings field annotates it (a test holds the two equal);
- ``describe`` is a one-line description of what it accepts, for people (the settings tables in docs/roles.md print it).

The checks never raise: any value, however odd (NaN, a 10,000-digit number, a list of dicts), gets a message.
``core`` holds what every value type is; the others hold the kinds: ``numbers``, ``text``, ``network``,
``paths`` and ``containers``.
"""
