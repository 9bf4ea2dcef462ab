// Drives a portal with the real arcgis-rest-js client (@esri/arcgis-rest-request and
// @esri/arcgis-rest-portal) and prints one JSON object with the outcome of every step.
//
// Input: one JSON object on stdin (so the password never shows in a process listing):
//   { portal, username, password, userQuery, groupQuery, itemSearches: [{name, query, pageSize}],
//     getItems: [id], jsonData: [id], fileData: [id], contentOwner, contentFolder,
//     groupUsers: [groupId], relatedOrigins: [id], relationshipType,
//     write: null | { owner, folderTitle, groupId, relationshipOrigin, webMap, csvText } }
// Every key but portal/username/password is optional; a missing key skips its steps.
//
// Output: { steps: { <name>: { ok: true, value } | { ok: false, error } } } on stdout.
// A failing step does not stop the others: the Rust test reports each failure precisely.

import { ArcGISIdentityManager } from "@esri/arcgis-rest-request";
import {
  addItemRelationship,
  createFolder,
  createItem,
  createItemInFolder,
  getGroupUsers,
  getItem,
  getItemData,
  getItemGroups,
  getRelatedItems,
  getUserContent,
  isItemSharedWithGroup,
  searchCommunityUsers,
  searchGroups,
  searchItems,
  searchUsers,
  shareItemWithGroup,
} from "@esri/arcgis-rest-portal";

// A simulator that never returns nextStart = -1 would otherwise loop forever.
const MAX_PAGES = 200;

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

function describeError(err) {
  // ArcGISRequestError carries the portal's code and messageCode; keep them for the report.
  return {
    name: err?.name ?? "Error",
    message: err?.message ?? String(err),
    code: err?.code ?? null,
    url: err?.url ?? null,
  };
}

const steps = {};
async function step(name, fn) {
  try {
    const value = await fn();
    steps[name] = { ok: true, value: value === undefined ? null : value };
    return value;
  } catch (err) {
    steps[name] = { ok: false, error: describeError(err) };
    return undefined;
  }
}

// Follows nextStart the way a client must: until it is -1 (or absent), feeding it back as start.
async function pageAll(fetchPage, listKey, pageSize) {
  const rows = [];
  const pages = [];
  let start = 1;
  for (let i = 0; i < MAX_PAGES; i++) {
    const page = await fetchPage(start, pageSize);
    const list = page[listKey] ?? [];
    rows.push(...list);
    pages.push({ start: page.start, num: page.num, total: page.total, nextStart: page.nextStart, count: list.length });
    if (!(page.nextStart > 0)) return { rows, pages, total: page.total };
    if (page.nextStart <= start) {
      throw new Error(`nextStart ${page.nextStart} does not advance past start ${start}`);
    }
    start = page.nextStart;
  }
  throw new Error(`still paging after ${MAX_PAGES} pages`);
}

const brief = (item) => ({
  id: item.id,
  title: item.title,
  type: item.type,
  owner: item.owner,
  ownerFolder: item.ownerFolder ?? null,
  access: item.access,
  url: item.url ?? null,
  typeKeywords: item.typeKeywords ?? [],
  tags: item.tags ?? [],
});

async function blobToBase64(blob) {
  return Buffer.from(await blob.arrayBuffer()).toString("base64");
}

async function main() {
  const cfg = await readStdin();
  const rest = `${cfg.portal.replace(/\/+$/, "")}/sharing/rest`;

  const auth = await step("signIn", async () => {
    const manager = await ArcGISIdentityManager.signIn({
      username: cfg.username,
      password: cfg.password,
      portal: rest,
    });
    return manager;
  });
  if (!auth) {
    process.stdout.write(JSON.stringify({ steps }));
    return;
  }
  steps.signIn.value = {
    username: await auth.getUsername(),
    portal: auth.portal,
    tokenExpires: auth.tokenExpires ? auth.tokenExpires.valueOf() : null,
  };
  await step("me", async () => {
    const user = await auth.getUser();
    return { username: user.username, role: user.role, orgId: user.orgId ?? null };
  });
  await step("portalSelf", async () => {
    const self = await auth.getPortal();
    return { id: self.id, name: self.name, portalMode: self.portalMode, isPortal: self.isPortal };
  });
  const base = { authentication: auth, portal: rest };

  if (cfg.userQuery !== undefined) {
    // community/users: the user search every client has.
    await step("searchCommunityUsers", async () => {
      const r = await pageAll(
        (start, num) => searchCommunityUsers({ ...base, q: cfg.userQuery, start, num, sortField: "username", sortOrder: "asc" }),
        "results",
        100,
      );
      return { usernames: r.rows.map((u) => u.username), total: r.total, pages: r.pages };
    });
    // portals/self/users/search: the org-admin user search arcgis-rest-js calls searchUsers.
    await step("searchUsers", async () => {
      const r = await pageAll(
        (start, num) => searchUsers({ ...base, q: cfg.userQuery, start, num, sortField: "username", sortOrder: "asc" }),
        "results",
        100,
      );
      return { usernames: r.rows.map((u) => u.username), total: r.total, pages: r.pages };
    });
  }

  if (cfg.groupQuery !== undefined) {
    await step("searchGroups", async () => {
      const r = await pageAll(
        (start, num) => searchGroups({ ...base, q: cfg.groupQuery, start, num }),
        "results",
        100,
      );
      return { groups: r.rows.map((g) => ({ id: g.id, title: g.title, owner: g.owner })), total: r.total, pages: r.pages };
    });
  }

  // Each search: { name, query, pageSize }; small page sizes exercise start/nextStart.
  for (const search of cfg.itemSearches ?? []) {
    await step(`searchItems:${search.name}`, async () => {
      const r = await pageAll(
        (start, num) => searchItems({ ...base, q: search.query, start, num, sortField: "title", sortOrder: "asc" }),
        "results",
        search.pageSize ?? 100,
      );
      return { items: r.rows.map(brief), total: r.total, pages: r.pages };
    });
  }

  for (const id of cfg.getItems ?? []) {
    await step(`getItem:${id}`, async () => brief(await getItem(id, base)));
  }
  for (const id of cfg.jsonData ?? []) {
    await step(`getItemData:${id}`, async () => getItemData(id, base));
  }
  for (const id of cfg.fileData ?? []) {
    await step(`getItemFile:${id}`, async () => {
      const blob = await getItemData(id, { ...base, file: true });
      return { base64: await blobToBase64(blob), size: blob.size };
    });
  }

  if (cfg.contentOwner) {
    const listing = (folderId) =>
      pageAll(
        (start, num) => getUserContent({ ...base, owner: cfg.contentOwner, folderId, start, num }),
        "items",
        100,
      );
    const root = await step("userContentRoot", async () => {
      const first = await getUserContent({ ...base, owner: cfg.contentOwner, start: 1, num: 100 });
      const all = await listing(undefined);
      return {
        items: all.rows.map(brief),
        total: all.total,
        pages: all.pages,
        folders: (first.folders ?? []).map((f) => ({ id: f.id, title: f.title, username: f.username ?? null })),
      };
    });
    if (root && cfg.contentFolder) {
      const folder = root.folders.find((f) => f.title === cfg.contentFolder);
      await step("userContentFolder", async () => {
        if (!folder) throw new Error(`folder ${cfg.contentFolder} is not in the root listing`);
        const all = await listing(folder.id);
        return { folderId: folder.id, items: all.rows.map(brief), total: all.total, pages: all.pages };
      });
    }
  }

  for (const id of cfg.groupUsers ?? []) {
    await step(`getGroupUsers:${id}`, async () => {
      const r = await getGroupUsers(id, base);
      return { owner: r.owner, admins: r.admins ?? [], users: r.users ?? [] };
    });
  }

  for (const id of cfg.relatedOrigins ?? []) {
    await step(`getRelatedItems:${id}`, async () => {
      const r = await getRelatedItems({ ...base, id, relationshipType: cfg.relationshipType ?? "Service2Data", direction: "forward" });
      return { total: r.total, items: (r.relatedItems ?? []).map(brief) };
    });
  }

  if (cfg.write) await writes(cfg.write, base);

  process.stdout.write(JSON.stringify({ steps }));
}

// The writes a cloner makes, each read back through the same client.
async function writes(w, base) {
  const owner = w.owner;
  const folder = await step("createFolder", async () => createFolder({ ...base, owner, title: w.folderTitle }));
  // A second createFolder with the same title must be refused by the portal.
  await step("createFolderDuplicate", async () => createFolder({ ...base, owner, title: w.folderTitle }));
  const folderId = folder?.folder?.id;

  const webMap = w.webMap;
  const map = await step("createItemInFolder", async () =>
    createItemInFolder({
      ...base,
      owner,
      folderId,
      item: {
        title: "Node client web map",
        type: "Web Map",
        typeKeywords: ["ArcGIS Online", "Map", "Web Map", "node-client-check"],
        tags: ["node-client", "check"],
        snippet: "Written by arcgis-rest-js",
        extent: [[-120, 30], [-100, 45]],
      },
      text: webMap,
    }),
  );
  const csvText = w.csvText;
  const csv = await step("createItem", async () =>
    createItem({
      ...base,
      owner,
      item: { title: "Node client CSV", type: "CSV", tags: ["node-client"] },
      file: new File([csvText], "node_client.csv", { type: "text/csv" }),
    }),
  );

  const mapId = map?.id;
  const csvId = csv?.id;
  if (mapId) {
    await step("readBackMap", async () => brief(await getItem(mapId, base)));
    await step("readBackMapData", async () => getItemData(mapId, base));
    await step("shareItemWithGroup", async () =>
      shareItemWithGroup({ ...base, id: mapId, groupId: w.groupId, owner }),
    );
    await step("isItemSharedWithGroup", async () =>
      isItemSharedWithGroup({ ...base, id: mapId, groupId: w.groupId }),
    );
    await step("getItemGroups", async () => {
      const r = await getItemGroups(mapId, base);
      const ids = (bucket) => (r[bucket] ?? []).map((g) => g.id);
      return { admin: ids("admin"), member: ids("member"), other: ids("other") };
    });
  }
  if (csvId) {
    await step("readBackCsv", async () => brief(await getItem(csvId, base)));
    await step("readBackCsvFile", async () => {
      const blob = await getItemData(csvId, { ...base, file: true });
      return { text: await blob.text() };
    });
    await step("addItemRelationship", async () =>
      addItemRelationship({
        ...base,
        owner,
        originItemId: w.relationshipOrigin,
        destinationItemId: csvId,
        relationshipType: "Service2Data",
      }),
    );
    await step("readBackRelated", async () => {
      const r = await getRelatedItems({ ...base, id: w.relationshipOrigin, relationshipType: "Service2Data", direction: "forward" });
      return { total: r.total, items: (r.relatedItems ?? []).map(brief) };
    });
  }
  if (folderId) {
    await step("readBackFolder", async () => {
      const r = await getUserContent({ ...base, owner, folderId, start: 1, num: 100 });
      return { items: (r.items ?? []).map(brief), currentFolder: r.currentFolder ?? null };
    });
  }
  // A missing item must be the portal's error, surfaced by the client as an ArcGISRequestError.
  await step("getMissingItem", async () => getItem("0000000000000000000000000000dead", base));
}

main().catch((err) => {
  steps.fatal = { ok: false, error: describeError(err) };
  process.stdout.write(JSON.stringify({ steps }));
  process.exitCode = 1;
});
