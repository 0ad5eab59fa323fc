// idsync's built-in compensate.js (docs/idm-samples.md#the-built-in-script-library).
//
// IDM's samples set this as a managed object's onSync hook: when the implicit synchronization
// of a managed-object change fails for one of the mappings, the change is undone in the managed
// object (a create is deleted, an update is written back to the old object, a delete is
// re-created), and the request fails with the synchronization's error, so that the managed
// object and the targets stay consistent. A successful synchronization is left alone.
//
// Bound variables (IDM's onSync): resourceName (managed/<type>/<id>), oldObject, newObject,
// syncResults {success, action, syncDetails}. Needs the `openidm` object. The undoing write is
// marked with the parameter `compensating` so that a compensation that fails in turn is not
// compensated again.
(function () {
    if (syncResults === null || syncResults === undefined || syncResults.success) {
        return;
    }
    var path = String(resourceName);
    var cut = path.lastIndexOf("/");
    var collection = path.substring(0, cut);
    var id = path.substring(cut + 1);
    var why = "the implicit synchronization of " + path + " failed";
    var details = syncResults.syncDetails || [];
    for (var i = 0; i < details.length; i++) {
        var d = details[i];
        if (d && (d.result === "FAILED" || d.success === false)) {
            var cause = d.cause;
            var text = cause === null || cause === undefined
                ? ""
                : (typeof cause === "string" ? cause : (cause.message || JSON.stringify(cause)));
            why = "the implicit synchronization of " + path + " by the mapping " + d.mapping
                + " failed" + (text ? ": " + text : "");
            break;
        }
    }
    var again = typeof request !== "undefined" && request !== null
        && request.additionalParameters
        && String(request.additionalParameters.compensating) === "true";
    if (again) {
        throw { "code": 500, "message": why + " (while undoing an earlier change)" };
    }
    var params = { "compensating": "true" };
    var action = String(syncResults.action);
    if (action === "notifyCreate" || action === "create") {
        openidm["delete"](path, null, params);
    } else if (action === "notifyUpdate" || action === "update") {
        openidm.update(path, null, oldObject, params);
    } else if (action === "notifyDelete" || action === "delete") {
        openidm.create(collection, id, oldObject, params);
    }
    throw { "code": 500, "message": why + "; the change to " + path + " was undone" };
}());
