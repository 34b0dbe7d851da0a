// The Images guide (openai-node 3.x), "Working with TypeScript", in-memory: the buffer cast to `any`
// so that it can carry a `name`. Run as TypeScript (transpiled by run_typescript.js).
const fs = require("fs");
const { Configuration, OpenAIApi } = require("openai");
const configuration = new Configuration({
  apiKey: process.env.OPENAI_API_KEY,
  basePath: process.env.OPENAI_BASE_URL,
});
const openai = new OpenAIApi(configuration);

async function main() {
  // This is the Buffer object that contains your image data
  const buffer: Buffer = fs.readFileSync(process.env.IMAGE || "image.png");
  // Cast the buffer to `any` so that we can set the `name` property
  const file: any = buffer;
  // Set a `name` that ends with .png so that the API knows it's a PNG image
  file.name = "image.png";
  const response = await openai.createImageVariation(
    file,
    1,
    "1024x1024"
  );
  console.log(JSON.stringify({ image_url: response.data.data[0].url, urls: response.data.data.map((image: any) => image.url), request_id: response.headers["x-request-id"] }));
}

main();
