// idsync's built-in roles/effectiveAssignments.js (docs/idm-samples.md#the-built-in-script-library).
//
// IDM's default managed.json computes the virtual property `effectiveAssignments` of managed/user
// with this script, as the property's onRetrieve file with the variable `effectiveRolesPropName`
// (or as a module: `calculateEffectiveAssignments(object, effectiveRolesPropName)`). The effective
// assignments are the assignments of the user's effective roles: each role's `assignments`
// property (references {"_ref": "managed/assignment/<id>"} or plain paths) read and answered as
// the assignment objects, each once. A role or an assignment that no longer exists is skipped.
function refOf(item) {
    return typeof item === "string" ? item : (item && item._ref);
}

function calculateEffectiveAssignments(object, effectiveRolesPropName) {
    var roles = object ? object[effectiveRolesPropName || "effectiveRoles"] : undefined;
    if (!Array.isArray(roles)) {
        return [];
    }
    var seen = {};
    var assignments = [];
    for (var i = 0; i < roles.length; i++) {
        var roleRef = refOf(roles[i]);
        if (typeof roleRef !== "string" || roleRef.indexOf("/") < 0) {
            continue;
        }
        var role = openidm.read(roleRef);
        var held = role ? role.assignments : undefined;
        if (!Array.isArray(held)) {
            continue;
        }
        for (var j = 0; j < held.length; j++) {
            var ref = refOf(held[j]);
            if (typeof ref !== "string" || seen[ref]) {
                continue;
            }
            seen[ref] = true;
            var assignment = openidm.read(ref);
            if (assignment) {
                assignments.push(assignment);
            }
        }
    }
    return assignments;
}

if (typeof exports === "object" && exports !== null) {
    exports.calculateEffectiveAssignments = calculateEffectiveAssignments;
}
if (typeof effectiveRolesPropName !== "undefined") {
    calculateEffectiveAssignments(object, effectiveRolesPropName);
}
