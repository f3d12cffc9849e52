-- Argo CD health check for the rolegate.dev kinds (Account, Member, Team, Role, RoleBinding).
-- It reads the kstatus conditions rolegate writes: Stalled=True is Degraded, Ready=True is
-- Healthy, anything else (including a status from an older generation) is Progressing.
local hs = {}
if obj.status == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "waiting for rolegate to reconcile"
  return hs
end
local generation = obj.metadata and obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and observed ~= nil and observed < generation then
  hs.status = "Progressing"
  hs.message = "waiting for rolegate to observe generation " .. generation
  return hs
end
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Stalled" and c.status == "True" then
    hs.status = "Degraded"
    hs.message = c.message
    return hs
  end
end
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then
    if c.status == "True" then
      hs.status = "Healthy"
    else
      hs.status = "Progressing"
    end
    hs.message = c.message
    return hs
  end
end
hs.status = "Progressing"
hs.message = "waiting for rolegate to reconcile"
return hs
