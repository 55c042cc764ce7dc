"""The domain: one room per capability, each owning its SQL, its rules and its provider calls.

    routing.py   where an event goes (number → group → default channel), route options, threads, delivery, digests
    alerts.py    calls and texts on our numbers → alerts; Claim and Call back; escalation of unclaimed calls
    numbers.py   AVANSER tracking numbers: search, request forms, approvals, the request's life, templates,
                 `/numbers route`'s grammar, released numbers and their quarantine
    vn.py        Exotel virtual numbers and their leases: allocate, remind, extend, swap, release, expire
    calls.py     click-to-call through DataTechLabs: the dialling rules, the rate limit, the two legs
    phones.py    the phone each person's calls ring
    home.py      the App Home's dashboard: what one person sees, read from SQLite
    refresh.py   whose App Home to publish again when something changes (imports no other room)
    people.py    each person's time zone (users.info, cached) and the workspace's address
    feed.py      AVANSER's data feed → the inbox: calls whose webhook was lost, recordings of known calls
    reports.py   every call counted once; /numbers report (counts and a chart); weekly reports of a route

Nothing here imports slack_bolt: the listeners in `commands/` parse, ack, call one function here and
render. Each room's webhook handlers are registered with the inbox by `bot.web.wire_domain`.
"""
