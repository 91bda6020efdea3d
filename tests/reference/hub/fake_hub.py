"""A small stand-in for the Hugging Face Hub, for tests: the endpoints huggingface_hub's
snapshot_download / hf_hub_download use, answered the way the Hub answers them, so that
huggingface_hub itself downloads from it (the tests run both it and autotrain against it).

Repositories come from a folder: ROOT/models/ORG/NAME/... and ROOT/datasets/ORG/NAME/...
A file .gated in a repository makes it gated (a Bearer token equal to --token is needed).
Large-file-storage files (*.safetensors, *.parquet, *.bin, or any file over 4 kB) are served
as the Hub serves them: the resolve URL redirects (302) to a second server, the "CDN", with
X-Linked-Etag = their SHA-256; other files are answered directly with their git blob id.

Uploads (huggingface_hub's create_repo + upload_folder without Xet): /api/whoami-v2,
/api/repos/create, /api/validate-yaml, .../branch/NAME (branches of uploaded repositories:
main, then those made; a commit or preupload to another revision is RevisionNotFound),
.../preupload/REV (*.safetensors, *.bin, *.parquet and
files over 1 MB go through LFS), ORG/NAME.git/info/lfs/objects/batch (a basic PUT to the CDN, or
multipart with --multipart-chunk N), the CDN's PUT and completion, a verify call, and the NDJSON
commit. GET /_state gives what was uploaded: {repo: {"create": body, "commits": [{"summary",
"files": {path: kind}, "revision"}], "files": {path: {"sha256", "kind", "text"}}, "branches": [...]}}.

Usage: fake_hub.py ROOT INFO_FILE [--token T] [--drop-after N] [--corrupt] [--ignore-range]
                   [--page-size N] [--multipart-chunk N]
Writes {"endpoint": ..., "cdn": ...} to INFO_FILE once listening, and one JSON line per request
to INFO_FILE + ".log" ({"server", "method", "path", "auth", "range"}). Runs until killed.
"""
import base64
import argparse
import hashlib
import json
import os
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LFS_SUFFIXES = (".safetensors", ".parquet", ".bin")


class Repo:
    def __init__(self, folder):
        self.folder = folder
        self.gated = os.path.exists(os.path.join(folder, ".gated"))
        self.files = {}
        for base, dirs, names in os.walk(folder):
            dirs.sort()
            for name in sorted(names):
                if name == ".gated":
                    continue
                full = os.path.join(base, name)
                path = os.path.relpath(full, folder).replace(os.sep, "/")
                data = open(full, "rb").read()
                lfs = path.endswith(LFS_SUFFIXES) or len(data) > 4096
                self.files[path] = {
                    "data": data,
                    "git": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest(),
                    "sha256": hashlib.sha256(data).hexdigest() if lfs else None,
                }
        digest = hashlib.sha1()
        for path, f in sorted(self.files.items()):
            digest.update(path.encode() + b"\0" + f["git"].encode())
        self.commit = digest.hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("info")
    ap.add_argument("--token", default="")
    ap.add_argument("--drop-after", type=int, default=0, help="the first GET of each CDN blob stops after N bytes")
    ap.add_argument("--corrupt", action="store_true", help="the CDN flips a byte of every blob it serves")
    ap.add_argument("--ignore-range", action="store_true", help="the CDN answers a Range request with the whole file")
    ap.add_argument("--page-size", type=int, default=1000)
    ap.add_argument("--multipart-chunk", type=int, default=0, help="LFS uploads over N bytes go in parts of N")
    args = ap.parse_args()

    repos = {}
    for kind in ("models", "datasets"):
        base = os.path.join(args.root, kind)
        if not os.path.isdir(base):
            continue
        for org in sorted(os.listdir(base)):
            for name in sorted(os.listdir(os.path.join(base, org))):
                repos[(kind, f"{org}/{name}")] = Repo(os.path.join(base, org, name))
    blobs = {f["sha256"]: f["data"] for r in repos.values() for f in r.files.values() if f["sha256"]}
    dropped = set()
    uploads = {}  # repo id -> {"create", "commits", "files", "branches"}
    lfs_store = {}  # sha256 -> bytes
    parts = {}  # sha256 -> {part number: bytes}
    state_lock = threading.Lock()
    log_lock = threading.Lock()
    log_path = args.info + ".log"
    info = {}

    class Handler(BaseHTTPRequestHandler):
        server_name = "hub"
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def record(self):
            with log_lock, open(log_path, "a") as log:
                log.write(json.dumps({"server": self.server_name, "method": self.command, "path": self.path,
                                      "auth": self.headers.get("Authorization", ""),
                                      "range": self.headers.get("Range", "")}) + "\n")

        def answer(self, status, headers=None, body=b""):
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if "Content-Length" not in (headers or {}):
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD" and body:
                self.wfile.write(body)

        def error(self, status, code, message, extra=None):
            h = {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"}
            h.update(extra or {})
            self.answer(status, h, json.dumps({"error": message}).encode())

        def body(self):
            return self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))

        def token_ok(self):
            return bool(args.token) and self.headers.get("Authorization") == f"Bearer {args.token}"

        def json_answer(self, obj, status=200):
            self.answer(status, {"Content-Type": "application/json"}, json.dumps(obj).encode())

        def authorized(self, repo):
            return not repo.gated or (args.token and self.headers.get("Authorization") == f"Bearer {args.token}")

    class HubHandler(Handler):
        def do_HEAD(self):
            self.route()

        def do_GET(self):
            self.route()

        def find(self, kind, repo_id):
            return repos.get((kind, repo_id))

        def do_POST(self):
            self.record()
            url = urllib.parse.urlsplit(self.path)
            parts_ = url.path.split("/")
            data = self.body()
            if url.path == "/api/validate-yaml":
                return self.json_answer({"errors": [], "warnings": []})
            if not self.token_ok():
                return self.error(401, "", "Invalid credentials in Authorization header")
            if url.path == "/api/repos/create":
                req = json.loads(data)
                repo_id = f"{req.get('organization') or 'fakeuser'}/{req['name']}"
                repo_url = f"{info['endpoint']}/{repo_id}"
                with state_lock:
                    if repo_id in uploads or ("models", repo_id) in repos:
                        return self.json_answer({"error": "You already created this model repo", "url": repo_url}, 409)
                    uploads[repo_id] = {"create": req, "commits": [], "files": {}, "branches": ["main"]}
                return self.json_answer({"url": repo_url})
            if url.path.endswith(".git/info/lfs/objects/batch"):
                repo_id = url.path[1:-len(".git/info/lfs/objects/batch")]
                if repo_id not in uploads:
                    return self.error(404, "RepoNotFound", "Repository not found")
                req = json.loads(data)
                objects = []
                for o in req["objects"]:
                    oid, size = o["oid"], o["size"]
                    entry = {"oid": oid, "size": size}
                    if oid not in lfs_store:
                        verify = {"href": f"{info['endpoint']}/{repo_id}.git/info/lfs/objects/verify"}
                        if args.multipart_chunk and size > args.multipart_chunk:
                            n = (size + args.multipart_chunk - 1) // args.multipart_chunk
                            header = {"chunk_size": str(args.multipart_chunk)}
                            for i in range(1, n + 1):
                                header[str(i)] = f"{info['cdn']}/upload/{oid}/part/{i}"
                            entry["actions"] = {"upload": {"href": f"{info['cdn']}/upload/{oid}/complete", "header": header},
                                                "verify": verify}
                        else:
                            entry["actions"] = {"upload": {"href": f"{info['cdn']}/upload/{oid}"}, "verify": verify}
                    objects.append(entry)
                return self.answer(200, {"Content-Type": "application/vnd.git-lfs+json"},
                                   json.dumps({"transfer": "basic", "objects": objects}).encode())
            if url.path.endswith(".git/info/lfs/objects/verify"):
                req = json.loads(data)
                if req["oid"] not in lfs_store or len(lfs_store[req["oid"]]) != req["size"]:
                    return self.error(400, "", "object not uploaded")
                return self.json_answer({})
            if url.path.startswith("/api/models/") and len(parts_) >= 7 and parts_[5] == "branch":
                repo_id, branch = f"{parts_[3]}/{parts_[4]}", urllib.parse.unquote("/".join(parts_[6:]))
                if repo_id not in uploads:
                    return self.error(404, "RepoNotFound", "Repository not found")
                with state_lock:
                    if branch in uploads[repo_id]["branches"]:
                        return self.error(409, "", "Reference already exists")
                    uploads[repo_id]["branches"].append(branch)
                return self.json_answer({})
            if url.path.startswith("/api/models/") and len(parts_) >= 7 and parts_[5] in ("preupload", "commit"):
                repo_id = f"{parts_[3]}/{parts_[4]}"
                if repo_id not in uploads:
                    return self.error(404, "RepoNotFound", "Repository not found")
                state = uploads[repo_id]
                revision = urllib.parse.unquote("/".join(parts_[6:]))
                if revision not in state["branches"]:
                    return self.error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                if parts_[5] == "preupload":
                    out = []
                    for f in json.loads(data)["files"]:
                        lfs = f["path"].endswith(LFS_SUFFIXES) or f["size"] > 1_000_000
                        e = {"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False}
                        have = state["files"].get(f["path"])
                        if have:
                            e["oid"] = have["sha256"] if have["kind"] == "lfsFile" else have["git"]
                        out.append(e)
                    return self.json_answer({"files": out})
                lines = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
                header = lines[0]
                if header.get("key") != "header":
                    return self.error(400, "", "the first line must be the header")
                kinds = {}
                with state_lock:
                    for line in lines[1:]:
                        v = line["value"]
                        if line["key"] == "file":
                            content = base64.b64decode(v["content"])
                            state["files"][v["path"]] = {
                                "sha256": hashlib.sha256(content).hexdigest(), "kind": "file",
                                "git": hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest(),
                                "text": content.decode("utf-8", "replace")}
                        elif line["key"] == "lfsFile":
                            blob = lfs_store.get(v["oid"])
                            if blob is None or len(blob) != v["size"]:
                                return self.error(400, "", f"LFS object {v['oid']} was not uploaded")
                            state["files"][v["path"]] = {"sha256": v["oid"], "kind": "lfsFile", "text": ""}
                        else:
                            return self.error(400, "", f"unknown key {line['key']}")
                        kinds[v["path"]] = line["key"]
                    oid = hashlib.sha1(json.dumps(lines).encode()).hexdigest()
                    state["commits"].append({"summary": header["value"]["summary"], "files": kinds,
                                             "revision": revision})
                return self.json_answer({"commitOid": oid, "commitUrl": f"{info['endpoint']}/{repo_id}/commit/{oid}"})
            return self.error(404, "EntryNotFound", "no such API")

        def route(self):
            self.record()
            url = urllib.parse.urlsplit(self.path)
            parts = url.path.split("/")
            if url.path == "/api/whoami-v2":
                if not self.token_ok():
                    return self.error(401, "", "Invalid credentials in Authorization header")
                return self.json_answer({"type": "user", "name": "fakeuser", "orgs": [{"name": "fakeorg"}],
                                         "auth": {"type": "access_token", "accessToken": {"role": "write"}}})
            if url.path == "/_state":
                with state_lock:
                    return self.json_answer(uploads)
            if url.path.startswith("/api/models/") and len(parts) > 4 and f"{parts[3]}/{parts[4]}" in uploads:
                state = uploads[f"{parts[3]}/{parts[4]}"]
                if len(parts) > 6 and parts[5] == "revision":
                    revision = urllib.parse.unquote("/".join(parts[6:]))
                    if revision not in state["branches"]:
                        return self.error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                sha = hashlib.sha1(str(len(state["commits"])).encode()).hexdigest()
                return self.json_answer({"id": f"{parts[3]}/{parts[4]}", "sha": sha, "private": True})
            if url.path.startswith("/api/models/") or url.path.startswith("/api/datasets/"):
                kind, org, name, verb = parts[2], parts[3], parts[4], parts[5] if len(parts) > 5 else ""
                repo = self.find(kind, f"{org}/{name}")
                if repo is None:
                    return self.error(404, "RepoNotFound", "Repository Not Found")
                if not self.authorized(repo):
                    return self.error(401, "GatedRepo", "Access to this repository is restricted")
                rev = urllib.parse.unquote("/".join(parts[6:]))
                if verb == "revision":
                    if rev not in ("main", repo.commit):
                        return self.error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
                    body = json.dumps({"id": f"{org}/{name}", "sha": repo.commit,
                                       "siblings": [{"rfilename": p} for p in repo.files]}).encode()
                    return self.answer(200, {"Content-Type": "application/json"}, body)
                if verb == "tree":
                    if rev != repo.commit:
                        return self.error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
                    entries = []
                    for path, f in sorted(repo.files.items()):
                        e = {"type": "file", "path": path, "size": len(f["data"]), "oid": f["git"]}
                        if f["sha256"]:
                            e["lfs"] = {"oid": f["sha256"], "size": len(f["data"]), "pointerSize": 130}
                        entries.append(e)
                    query = urllib.parse.parse_qs(url.query)
                    start = int(query.get("cursor", ["0"])[0])
                    page = entries[start:start + args.page_size]
                    headers = {"Content-Type": "application/json"}
                    if start + args.page_size < len(entries):
                        nxt = f"{info['endpoint']}{url.path}?recursive=true&expand=false&cursor={start + args.page_size}"
                        headers["Link"] = f'<{nxt}>; rel="next"'
                    return self.answer(200, headers, json.dumps(page).encode())
                return self.error(404, "EntryNotFound", "no such API")
            # /[datasets/]ORG/NAME/resolve/REV/PATH
            kind = "models"
            if parts[1] == "datasets":
                kind, parts = "datasets", parts[1:]
            if len(parts) < 6 or parts[3] != "resolve":
                return self.error(404, "EntryNotFound", "not found")
            repo = self.find(kind, f"{parts[1]}/{parts[2]}")
            if repo is None:
                return self.error(404, "RepoNotFound", "Repository Not Found")
            if not self.authorized(repo):
                return self.error(401, "GatedRepo", "Access to this repository is restricted")
            rev = urllib.parse.unquote(parts[4])
            if rev not in ("main", repo.commit):
                return self.error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            path = urllib.parse.unquote("/".join(parts[5:]))
            f = repo.files.get(path)
            if f is None:
                return self.error(404, "EntryNotFound", f"{path} does not exist", {"X-Repo-Commit": repo.commit})
            if f["sha256"]:
                return self.answer(302, {"Location": f"{info['cdn']}/blobs/{f['sha256']}", "X-Repo-Commit": repo.commit,
                                         "X-Linked-Etag": f'"{f["sha256"]}"', "X-Linked-Size": str(len(f["data"])),
                                         "ETag": f'"{f["git"]}"'})
            return self.answer(200, {"X-Repo-Commit": repo.commit, "ETag": f'"{f["git"]}"',
                                     "Content-Type": "application/octet-stream"}, f["data"])

    class CdnHandler(Handler):
        server_name = "cdn"

        def do_GET(self):
            self.record()
            sha = self.path.rsplit("/", 1)[-1]
            data = blobs.get(sha)
            if data is None:
                return self.answer(404, {}, b"no such blob")
            if args.corrupt:
                data = bytes([data[0] ^ 1]) + data[1:]
            start = 0
            rng = "" if args.ignore_range else self.headers.get("Range", "")
            if rng.startswith("bytes=") and rng.endswith("-"):
                start = int(rng[6:-1])
            body = data[start:]
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(body))}
            status = 200
            if start:
                status = 206
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            if args.drop_after and sha not in dropped and len(body) > args.drop_after:
                dropped.add(sha)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body[:args.drop_after])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.answer(status, headers, body)

        def do_PUT(self):
            self.record()
            data = self.body()
            p = self.path.split("/")  # /upload/OID or /upload/OID/part/N
            oid = p[2]
            if len(p) == 5 and p[3] == "part":
                with state_lock:
                    parts.setdefault(oid, {})[int(p[4])] = data
                return self.answer(200, {"ETag": '"%s"' % hashlib.md5(data).hexdigest()})
            if hashlib.sha256(data).hexdigest() != oid:
                return self.answer(400, {}, b"sha256 mismatch")
            with state_lock:
                lfs_store[oid] = data
            self.answer(200)

        def do_POST(self):
            self.record()
            data = self.body()
            p = self.path.split("/")  # /upload/OID/complete
            oid = p[2]
            req = json.loads(data)
            got = parts.get(oid, {})
            blob = b""
            for part in req["parts"]:
                chunk = got.get(part["partNumber"])
                if chunk is None or part["etag"] != '"%s"' % hashlib.md5(chunk).hexdigest():
                    return self.answer(400, {}, b"bad part")
                blob += chunk
            if hashlib.sha256(blob).hexdigest() != oid:
                return self.answer(400, {}, b"sha256 mismatch")
            with state_lock:
                lfs_store[oid] = blob
            self.answer(200, {"Content-Type": "application/json"}, b"{}")

    hub = ThreadingHTTPServer(("127.0.0.1", 0), HubHandler)
    cdn = ThreadingHTTPServer(("127.0.0.1", 0), CdnHandler)
    info["endpoint"] = f"http://127.0.0.1:{hub.server_address[1]}"
    info["cdn"] = f"http://127.0.0.1:{cdn.server_address[1]}"
    threading.Thread(target=cdn.serve_forever, daemon=True).start()
    tmp = args.info + ".tmp"
    with open(tmp, "w") as out:
        json.dump(info, out)
    os.replace(tmp, args.info)
    hub.serve_forever()


if __name__ == "__main__":
    main()
