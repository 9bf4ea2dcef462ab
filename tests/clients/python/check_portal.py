"""Drives a portal with the real ArcGIS API for Python and prints one JSON object with the
outcome of every step.

Input: one JSON object on stdin (so the password never shows in a process listing):
  {url, username, password, userQuery, maxUsers, groupQuery, itemSearches: [{name, query, maxItems}],
   contentOwner, contentFolder, maxFolderItems, getItems: [id], jsonData: [id],
   fileData: [id], groupMembers: [groupId], relatedOrigins: [id], relationshipType}
Every key but url/username/password is optional; a missing key skips its steps.

Output: {"steps": {name: {"ok": true, "value": ...} | {"ok": false, "error": {...}}}}.
A failing step does not stop the others, so the Rust test can report each failure precisely.
"""

import base64
import json
import logging
import os
import socket
import sys
import traceback
import warnings


def describe(exc):
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        # The last frames tell which client call met which server answer.
        "trace": traceback.format_exc(limit=-4),
    }


STEPS = {}

# The Python API hydrates Feature Service items by calling their service URL (fixtures point
# at services.example.com). This check is about the portal, and a test may only talk to
# loopback, so every other host is refused at name resolution (instantly, where a real DNS
# failure can take 5 s per item) and listed in the output.
OFF_LOOPBACK = set()
_resolve = socket.getaddrinfo


def _loopback_only(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else str(host)
    if name in ("localhost", "::1") or name.startswith("127."):
        return _resolve(host, *args, **kwargs)
    OFF_LOOPBACK.add(name)
    raise socket.gaierror(socket.EAI_NONAME, f"{name} is not loopback; refused by check_portal.py")


socket.getaddrinfo = _loopback_only


def step(name, fn):
    try:
        value = fn()
        STEPS[name] = {"ok": True, "value": value}
        return value
    except Exception as exc:  # every failure is data for the report
        STEPS[name] = {"ok": False, "error": describe(exc)}
        return None


def brief(item):
    return {
        "id": item.id,
        "title": item.title,
        "type": item.type,
        "owner": item.owner,
        "ownerFolder": item.get("ownerFolder"),
        "access": item.access,
    }


def as_bytes(data):
    """get_data() returns bytes for most file items, but a path for some downloads."""
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    if isinstance(data, str):
        with open(data, "rb") as handle:
            return handle.read()
    raise TypeError(f"get_data() returned {type(data).__name__}: {data!r:.200}")


def main():
    cfg = json.load(sys.stdin)
    # The client warns about verify_cert=False and logs retries on stderr; stdout stays JSON.
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(relativeCreated)d %(levelname)s %(name)s %(message)s"
    )
    if os.environ.get("CHECK_PORTAL_TRACE"):
        # Every request the client sends, with its status, for finding what it expects.
        logging.getLogger("urllib3.connectionpool").setLevel(logging.DEBUG)
    warnings.simplefilter("ignore")

    from arcgis.gis import GIS

    gis = step(
        "connect",
        lambda: GIS(
            cfg["url"],
            cfg["username"],
            cfg["password"],
            use_gen_token=True,
            verify_cert=False,
        ),
    )
    if gis is None:
        return
    STEPS["connect"]["value"] = {
        "me": gis.users.me.username if gis.users.me else None,
        "url": gis.url,
        "version": list(gis.version) if isinstance(gis.version, (list, tuple)) else gis.version,
        "isPortal": bool(gis.properties.get("isPortal")),
        "portalMode": gis.properties.get("portalMode"),
    }

    if "userQuery" in cfg:
        step(
            "usersSearch",
            lambda: [
                u.username
                for u in gis.users.search(cfg["userQuery"], max_users=cfg.get("maxUsers", 100))
            ],
        )
    if "groupQuery" in cfg:
        step(
            "groupsSearch",
            lambda: [
                {"id": g.id, "title": g.title, "owner": g.owner}
                for g in gis.groups.search(cfg["groupQuery"], max_groups=cfg.get("maxGroups", 1000))
            ],
        )
    for search in cfg.get("itemSearches", []):
        step(
            f"contentSearch:{search['name']}",
            lambda search=search: [
                brief(i)
                for i in gis.content.search(search["query"], max_items=search.get("maxItems", 100))
            ],
        )

    if cfg.get("contentOwner"):
        owner = step("usersGet", lambda: gis.users.get(cfg["contentOwner"]))
        if owner is not None:
            STEPS["usersGet"]["value"] = {"username": owner.username, "fullName": owner.fullName}
            limit = cfg.get("maxFolderItems", 100)
            # In 2.4 items() without a folder walks the root and then every folder.
            step("userItems", lambda: [brief(i) for i in owner.items(max_items=limit)])
            step(
                "userRootItems",
                lambda: [brief(i) for i in owner.items(folder="Root Folder", max_items=limit)],
            )
            if cfg.get("contentFolder"):
                step(
                    "userFolderItems",
                    lambda: [
                        brief(i) for i in owner.items(folder=cfg["contentFolder"], max_items=limit)
                    ],
                )

    for item_id in cfg.get("getItems", []):
        step(f"contentGet:{item_id}", lambda item_id=item_id: brief(gis.content.get(item_id)))
    for item_id in cfg.get("jsonData", []):
        step(f"getData:{item_id}", lambda item_id=item_id: gis.content.get(item_id).get_data())
    for item_id in cfg.get("fileData", []):
        step(
            f"getFile:{item_id}",
            lambda item_id=item_id: base64.b64encode(
                as_bytes(gis.content.get(item_id).get_data(try_json=False))
            ).decode("ascii"),
        )

    for group_id in cfg.get("groupMembers", []):
        step(f"getMembers:{group_id}", lambda group_id=group_id: gis.groups.get(group_id).get_members())

    rel_type = cfg.get("relationshipType", "Service2Data")
    for item_id in cfg.get("relatedOrigins", []):
        step(
            f"relatedItems:{item_id}",
            lambda item_id=item_id: [
                brief(i) for i in gis.content.get(item_id).related_items(rel_type, "forward")
            ],
        )

    step("contentGetMissing", lambda: gis.content.get("0000000000000000000000000000dead"))


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # never leave stdout without a JSON document
        STEPS["fatal"] = {"ok": False, "error": describe(exc)}
    json.dump({"steps": STEPS, "offLoopbackHosts": sorted(OFF_LOOPBACK)}, sys.stdout, default=str)
