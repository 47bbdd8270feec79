-- inm.lua - wrk script: every request revalidates with If-None-Match.
-- BENCH_ETAG is the entity tag (with its quotes) the server gave for the URL.
wrk.headers["If-None-Match"] = os.getenv("BENCH_ETAG")
