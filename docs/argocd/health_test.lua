-- Runs health.lua against fixtures the way Argo CD does (the object in a global `obj`).
local dir = arg[0]:match("(.*/)") or "./"
local check = assert(loadfile(dir .. "health.lua"))
local passed, failed = 0, 0

local function case(name, object, want_status, want_message)
  obj = object
  local hs = check()
  if hs.status == want_status and (want_message == nil or hs.message == want_message) then
    passed = passed + 1
  else
    failed = failed + 1
    print(string.format("FAIL %s: got %s (%s), want %s", name, tostring(hs.status), tostring(hs.message), want_status))
  end
end

local function cond(type_, status, message)
  return { type = type_, status = status, reason = "R", message = message }
end

case("no status yet", { metadata = { generation = 1 } }, "Progressing", "waiting for rolegate to reconcile")
case("accepted binding", { metadata = { generation = 1 }, status = { observedGeneration = 1,
  conditions = { cond("Accepted", "True", "ok"), cond("Ready", "True", "the binding is accepted") } } },
  "Healthy", "the binding is accepted")
case("stale generation", { metadata = { generation = 2 }, status = { observedGeneration = 1,
  conditions = { cond("Ready", "True", "old") } } }, "Progressing")
case("rejected binding", { metadata = { generation = 1 }, status = { observedGeneration = 1,
  conditions = { cond("Ready", "False", "[R5] bob already holds ..."), cond("Stalled", "True", "[R5] bob already holds ...") } } },
  "Degraded", "[R5] bob already holds ...")
case("dangling reference heals", { metadata = { generation = 1 }, status = { observedGeneration = 1,
  conditions = { cond("Ready", "False", "[R16] member carol does not exist"), cond("Reconciling", "True", "[R16] member carol does not exist") } } },
  "Progressing", "[R16] member carol does not exist")
case("team waiting for a listed member", { metadata = { generation = 1 }, status = { observedGeneration = 1, members = 1, bindings = 1,
  conditions = { cond("Ready", "False", "[R16] team web lists member carol, which does not exist"), cond("Reconciling", "True", "[R16] team web lists member carol, which does not exist") } } },
  "Progressing", "[R16] team web lists member carol, which does not exist")
case("team listing a foreign member", { metadata = { generation = 1 }, status = { observedGeneration = 1, members = 1, bindings = 0,
  conditions = { cond("Ready", "False", "[R8] ..."), cond("Stalled", "True", "[R8] ...") } } },
  "Degraded", "[R8] ...")
case("ready team", { metadata = { generation = 2 }, status = { observedGeneration = 2, members = 2, bindings = 1,
  conditions = { cond("Ready", "True", "every listed member resolves to a Member of the account") } } },
  "Healthy")
case("conditions without Ready", { metadata = { generation = 1 }, status = { observedGeneration = 1, conditions = {} } }, "Progressing")

print(string.format("argocd health: %d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
