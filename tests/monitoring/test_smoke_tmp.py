import time, httpx
def test_smoke(monitoring):
    t0=time.monotonic()
    ing = monitoring.processes.procs["ingest"]
    while ing.poll() is None and time.monotonic()-t0 < 240:
        time.sleep(2)
    print("ingest done after", time.monotonic()-t0, ing.poll())
    time.sleep(3)
    for job, addr in monitoring.targets.items():
        try:
            txt = httpx.get(f"http://{addr}/metrics").text
        except Exception as e:
            print(job, "ERR", e); continue
        names = sorted({l.split('{')[0].split(' ')[0] for l in txt.splitlines() if l and not l.startswith('#')})
        print(job, names)
    print(monitoring.query('up'))
