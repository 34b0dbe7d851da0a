// The Images guide (openai-node 3.x), "Error handling", as written.
const fs = require("fs");
const { Configuration, OpenAIApi } = require("openai");
const configuration = new Configuration({
  apiKey: process.env.OPENAI_API_KEY,
  basePath: process.env.OPENAI_BASE_URL,
});
const openai = new OpenAIApi(configuration);

async function main() {
  try {
    const response = await openai.createImageVariation(
      fs.createReadStream(process.env.IMAGE || "image.png"),
      1,
      "1024x1024"
    );
    console.log(JSON.stringify({ image_url: response.data.data[0].url, request_id: response.headers["x-request-id"] }));
  } catch (error) {
    if (error.response) {
      console.log(JSON.stringify({ status: error.response.status, data: error.response.data, request_id: error.response.headers["x-request-id"] }));
    } else {
      console.log(JSON.stringify({ message: error.message }));
    }
  }
}

main();
