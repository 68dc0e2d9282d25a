# usage: python3 load.py HOST PORT CLIENTS SECONDS SKU: clients that each fill a cart of one line and check it out, in a loop; prints checkouts/s, p50, p99
import http.client, json, sys, threading, time
host, port, clients, secs, sku = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
lat, fails, lock = [], [0], threading.Lock()
body_tpl = {"email":"p@example.com","address":{"name":"Ada","line1":"Hauptstr. 1","city":"Berlin","postal_code":"10115","country":"DE"},"shipping":"standard","card":{"number":"4242424242424242","exp_month":12,"exp_year":2030,"cvc":"123"}}
def call(method, path, body, headers):
    c = http.client.HTTPConnection(host, port, timeout=30)
    c.request(method, path, body=json.dumps(body), headers={"content-type":"application/json", **headers})
    r = c.getresponse(); data = r.read(); c.close(); return r.status, data
def worker(i):
    n = 0; until = time.time() + secs
    while time.time() < until:
        n += 1; cart = f"p-{time.time_ns()}-{i}-{n}"
        s, _ = call("POST", f"/api/carts/{cart}/items", {"sku": sku, "quantity": 1}, {})
        if s >= 300: fails[0] += 1; continue
        t = time.perf_counter()
        s, d = call("POST", "/api/checkout", {**body_tpl, "cart_id": cart}, {"idempotency-key": cart})
        e = time.perf_counter() - t
        with lock:
            if s == 201: lat.append(e)
            else:
                fails[0] += 1
                if fails[0] < 3: print(s, d[:200])
ts = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
[t.start() for t in ts]; [t.join() for t in ts]
lat.sort()
if lat: print(f"{len(lat)/secs:.1f} checkouts/s p50 {lat[len(lat)//2]*1000:.2f} ms p99 {lat[int(len(lat)*0.99)]*1000:.2f} ms fails {fails[0]}")
else: print("no checkouts; fails", fails[0])
