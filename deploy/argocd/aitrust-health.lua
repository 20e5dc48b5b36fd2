-- Argo CD health check for aitrust.dev/AIWorkload (argocd-cm key
-- resource.customizations.health.aitrust.dev_AIWorkload), also used for TrustPolicy, ModelEndpoint
-- and DataSource, whose status has no tier. Argo CD sets `obj` to the live object.
local hs = {}

-- Ready=False reasons a retry will not fix: the user (or the cluster) has to act.
local degraded_reasons = {
  InvalidSpec = true,
  InvalidPolicy = true,
  TargetNotFound = true,
  EnforcementFailed = true,
}

local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the aitrust operator to reconcile"
  return hs
end

local generation = obj.metadata ~= nil and obj.metadata.generation or nil
local observed = status.observedGeneration
if observed == nil or (generation ~= nil and observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the aitrust operator to reconcile the latest spec"
  return hs
end

local ready = nil
if status.conditions ~= nil then
  for _, condition in ipairs(status.conditions) do
    if condition.type == "Ready" then
      ready = condition
    end
  end
end

local function describe(condition)
  local text = condition.reason or ""
  if condition.message ~= nil and condition.message ~= "" then
    text = text .. ": " .. condition.message
  end
  return text
end

if ready ~= nil and ready.status == "False" and degraded_reasons[ready.reason] then
  hs.status = "Degraded"
  hs.message = describe(ready)
  return hs
end

if status.tier == "quarantined" then
  hs.status = "Degraded"
  local message = "Quarantined"
  if status.trustScore ~= nil then
    message = message .. " (trust " .. string.format("%d", status.trustScore) .. ")"
  end
  if status.quarantine ~= nil and status.quarantine.reason ~= nil and status.quarantine.reason ~= "" then
    message = message .. ": " .. status.quarantine.reason
  elseif ready ~= nil and ready.message ~= nil and ready.message ~= "" then
    message = message .. ": " .. ready.message
  end
  hs.message = message
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  local message = describe(ready)
  if status.tier ~= nil then
    message = "Tier " .. status.tier
    if status.trustScore ~= nil then
      message = message .. ", trust " .. string.format("%d", status.trustScore)
    end
  end
  hs.message = message
  return hs
end

hs.status = "Progressing"
if ready ~= nil then
  hs.message = describe(ready)
else
  hs.message = "Waiting for the Ready condition"
end
return hs
