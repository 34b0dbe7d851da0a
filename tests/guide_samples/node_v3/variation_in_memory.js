// The Images guide (openai-node 3.x), "Using in-memory image data": a Buffer named image.png.
const fs = require("fs");
const { Configuration, OpenAIApi } = require("openai");
const configuration = new Configuration({
  apiKey: process.env.OPENAI_API_KEY,
  basePath: process.env.OPENAI_BASE_URL,
});
const openai = new OpenAIApi(configuration);

async function main() {
  // This is the Buffer object that contains your image data
  const buffer = fs.readFileSync(process.env.IMAGE || "image.png");
  // Set a `name` that ends with .png so that the API knows it's a PNG image
  buffer.name = "image.png";
  const response = await openai.createImageVariation(
    buffer,
    1,
    "1024x1024"
  );
  console.log(JSON.stringify({ image_url: response.data.data[0].url, urls: response.data.data.map((image) => image.url), request_id: response.headers["x-request-id"] }));
}

main();
