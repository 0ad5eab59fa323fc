// HR writes departments as it likes: " Engineering", "research", "ENGINEERING".
var d = source.trim().toLowerCase();
d.charAt(0).toUpperCase() + d.substring(1);
