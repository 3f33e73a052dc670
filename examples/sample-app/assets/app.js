document.querySelector("h1").addEventListener("click", () => alert("updated over the air"));
