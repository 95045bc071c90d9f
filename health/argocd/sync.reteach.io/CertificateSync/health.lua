-- Argo CD health check of sync.reteach.io EmployeeSync and CertificateSync (one file per kind, same
-- content). It follows the kstatus rules the operator's status is written for:
--   spec.suspend                                   -> Suspended
--   Reconciling=True                               -> Progressing (a run is in progress)
--   status.observedGeneration != metadata.generation -> Progressing (the operator has not seen it yet)
--   Stalled=True                                   -> Degraded  (a human must act; the message says what)
--   Ready=True                                     -> Healthy
--   Ready=False, reason WaitingForEmployeeSync     -> Progressing (waits for its EmployeeSync)
--   Ready=False, any other reason                  -> Degraded  (failing, retried with backoff)
--   Ready=Unknown or missing                       -> Progressing
local hs = {}

local function condition(type)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function text(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c ~= nil and c.reason ~= nil then
    return c.reason
  end
  return fallback
end

local ready = condition("Ready")

if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = text(ready, "spec.suspend is true")
  return hs
end

local reconciling = condition("Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = text(reconciling, "Reconciling")
  return hs
end

local generation = obj.metadata.generation
local observed = nil
if obj.status ~= nil then
  observed = obj.status.observedGeneration
end
if generation ~= nil and (observed == nil or observed ~= generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = text(stalled, "Stalled")
  return hs
end

if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the first run"
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
elseif ready.status == "False" and ready.reason ~= "WaitingForEmployeeSync" then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
hs.message = text(ready, ready.status)
return hs
