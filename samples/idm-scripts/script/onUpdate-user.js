// managed.json onUpdate: `oldObject` as stored, `newObject` (also `object`) as it will be.
if (oldObject.department !== newObject.department) {
    logger.info("{} moves from {} to {}", newObject.userName, oldObject.department, newObject.department);
}
