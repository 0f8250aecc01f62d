# The HTTP request of infra's `uri` module, run on the host with its python3 (as Ansible's
# uri runs there): reads its settings as JSON on stdin, prints the response as JSON.
import base64, http.cookiejar, json, ssl, sys, time, urllib.error, urllib.parse, urllib.request

c = json.load(sys.stdin)


class Redirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, hdrs, newurl):
        mode = c["follow"]
        if mode in ("none", "no"):
            return None
        if mode == "safe" and req.get_method() not in ("GET", "HEAD"):
            return None
        return super().redirect_request(req, fp, code, msg, hdrs, newurl)


def encode(body, fmt):
    if body is None:
        return None
    if fmt == "json" and not isinstance(body, str):
        body = json.dumps(body)
    elif fmt == "form-urlencoded" and isinstance(body, dict):
        pairs = []
        for k, vs in body.items():
            for v in vs if isinstance(vs, list) else [vs]:
                if v is not None:
                    pairs.append((str(k), str(v)))
        body = urllib.parse.urlencode(pairs, doseq=True)
    elif not isinstance(body, str):
        body = json.dumps(body)
    return body.encode()


jar = http.cookiejar.CookieJar()
tls = ssl.create_default_context()
if not c["validate_certs"]:
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE
handlers = [Redirects(), urllib.request.HTTPCookieProcessor(jar), urllib.request.HTTPSHandler(context=tls)]
if c["user"] is not None and not c["force_basic_auth"]:
    pm = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    pm.add_password(None, c["url"], c["user"], c["password"] or "")
    handlers.append(urllib.request.HTTPBasicAuthHandler(pm))
opener = urllib.request.build_opener(*handlers)
req = urllib.request.Request(c["url"], data=encode(c["body"], c["body_format"]), method=c["method"], headers=c["headers"])
out = {"url": c["url"], "status": -1}
start = time.time()
try:
    r = opener.open(req, timeout=c["timeout"])
    data = r.read()
    out.update(status=r.status, url=r.geturl(), msg="OK (%s bytes)" % r.headers.get("Content-Length", "unknown"))
    out["cookies"] = {k.name: k.value for k in jar}
    out["cookies_string"] = "; ".join("%s=%s" % (k.name, k.value) for k in jar)
except urllib.error.HTTPError as e:
    data = e.read() if e.fp else b""
    r = e
    out.update(status=e.code, url=e.geturl() or c["url"], msg=str(e))
except Exception as e:
    r = None
    data = None
    out["msg"] = "Request failed: %s" % e
out["elapsed"] = int(time.time() - start)
out["headers"] = list(r.headers.items()) if r is not None and r.headers is not None else []
out["body"] = base64.b64encode(data).decode() if data is not None else None
print(json.dumps(out))
